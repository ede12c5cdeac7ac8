/*
 * test_stats_cli.c — `profit-engine stats analyze` and `stats sample-size` as a caller meets
 * them: the binary (PE_TEST_BINARY) run in a child process, input on standard input.
 *
 * Invariants the tests hold the binary to:
 *  1. Exit 0 with exactly one JSON object (one line) on stdout, in the documented shape:
 *     every key present, in the documented order, undefined values null.
 *  2. Bad input exits 2 with {"error":{"code":…,"message":…}} on stdout, the message naming
 *     the field; bad options likewise (and a line on stderr).
 *  3. No NaN or Infinity ever reaches stdout; never a signal (a crash or sanitizer abort).
 *  4. Needs no PE_* configuration and no database (the child runs with none).
 */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pe_test.h"

/* Runs `profit-engine stats <args…>` with stdin_data (NULL: empty) and no PE_* variables;
 * fails the test when a signal ended it (invariant 3). */
static void run(pe_test_cli_t *r, const char *const *args, const char *stdin_data)
{
    const char *argv[16] = {"stats"};
    size_t na = 1;
    for (size_t i = 0; args[i]; i++) {
        assert_true(na < PE_ARRAY_LEN(argv) - 1);
        argv[na++] = args[i];
    }
    argv[na] = NULL;
    pe_test_cli_exec(argv, NULL, stdin_data, PE_TEST_WAIT_MS, r);
    if (r->signal || r->timed_out)
        fail_msg("profit-engine stats died of signal %d%s; stderr: %s", r->signal,
                 r->timed_out ? " (timed out)" : "", r->err);
}

/* stdout is one JSON object on one line, with no NaN or Infinity. Returns it parsed. */
static cJSON *one_object(const pe_test_cli_t *r)
{
    const char *s = r->out;
    size_t len = r->out_len;
    assert_true(len > 0 && s[len - 1] == '\n');
    assert_ptr_equal(strchr(s, '\n'), s + len - 1);
    assert_null(strstr(s, "nan"));
    assert_null(strstr(s, "NaN"));
    assert_null(strstr(s, "inf"));
    assert_null(strstr(s, "Inf"));
    cJSON *j = cJSON_ParseWithLength(s, len);
    assert_non_null(j);
    assert_true(cJSON_IsObject(j));
    return j;
}

static void expect_keys(const cJSON *o, const char *const *keys)
{
    const cJSON *m = o->child;
    size_t i = 0;
    for (; keys[i] && m; i++, m = m->next)
        if (strcmp(m->string, keys[i]) != 0)
            fail_msg("key %zu: got %s, want %s", i, m->string, keys[i]);
    if (keys[i] || m)
        fail_msg("key %zu: got %s, want %s", i, m ? m->string : "(end)",
                 keys[i] ? keys[i] : "(end)");
}

static void test_analyze_shape(void **state)
{
    (void)state;
    static const char *const args[] = {"analyze", NULL};
    pe_test_cli_t r;
    run(&r, args,
        "{\"metricType\":\"proportion\",\"method\":\"bayesian\",\"sides\":\"greater\","
        "\"prior\":{\"mean\":0,\"variance\":0.09},\"split\":[0.5,0.5],\"mde\":0.1,"
        "\"control\":{\"n\":10000,\"sum\":1000},\"variant\":{\"n\":10000,\"sum\":1100}}");
    assert_int_equal(r.status, 0);
    cJSON *j = one_object(&r);
    static const char *const top[] = {"control", "variant", "effect", "pValue", "chanceToWin",
                                      "risk",    "srm",     "cuped",  "power",  NULL};
    expect_keys(j, top);
    static const char *const effect[] = {"estimate", "stddev", "ciLow", "ciHigh", NULL};
    expect_keys(cJSON_GetObjectItem(j, "effect"), effect);
    static const char *const moments[] = {"mean", "variance", NULL};
    expect_keys(cJSON_GetObjectItem(j, "control"), moments);
    expect_keys(cJSON_GetObjectItem(j, "variant"), moments);
    static const char *const srm[] = {"pValue", "mismatch", NULL};
    expect_keys(cJSON_GetObjectItem(j, "srm"), srm);
    static const char *const power[] = {"mdeRelative", "achievedPower", NULL};
    expect_keys(cJSON_GetObjectItem(j, "power"), power);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "pValue"))); /* bayesian */
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "cuped")));  /* not asked */
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "effect"), "ciHigh")));
    double chance = cJSON_GetObjectItem(j, "chanceToWin")->valuedouble;
    assert_true(chance > 0.9 && chance < 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "risk")), 2);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "srm"), "mismatch")));
    cJSON_Delete(j);
    pe_test_cli_free(&r);
}

static void test_analyze_decision(void **state)
{
    (void)state;
    static const char *const args[] = {"analyze", NULL};
    pe_test_cli_t r;
    run(&r, args,
        "{\"metricType\":\"proportion\",\"control\":{\"n\":8000,\"sum\":800},"
        "\"variant\":{\"n\":8000,\"sum\":560},\"runtimeDays\":1,"
        "\"plan\":{\"rollbackTriggers\":[{\"relativeChange\":-0.05}]}}");
    assert_int_equal(r.status, 0);
    cJSON *j = one_object(&r);
    const cJSON *d = cJSON_GetObjectItem(j, "decision");
    assert_string_equal(cJSON_GetObjectItem(d, "verdict")->valuestring, "ROLLBACK");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "reasons"), 0)->valuestring,
                        "rollback_trigger");
    cJSON_Delete(j);
    pe_test_cli_free(&r);
}

static void expect_error(const char *input, const char *code, const char *prefix)
{
    static const char *const args[] = {"analyze", NULL};
    pe_test_cli_t r;
    run(&r, args, input);
    assert_int_equal(r.status, 2);
    cJSON *j = one_object(&r);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    assert_non_null(e);
    assert_string_equal(cJSON_GetObjectItem(e, "code")->valuestring, code);
    const char *msg = cJSON_GetObjectItem(e, "message")->valuestring;
    if (strncmp(msg, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", msg, prefix);
    cJSON_Delete(j);
    pe_test_cli_free(&r);
}

static void test_analyze_errors(void **state)
{
    (void)state;
    expect_error(NULL, "invalid_json", "input:");
    expect_error("{\"metricType\":\"mean\",\"control\":{\"n\":3,\"sum\":3,\"sumSquares\":1},"
                 "\"variant\":{\"n\":3,\"sum\":3,\"sumSquares\":3}}",
                 "inconsistent", "control.sumSquares:");
    expect_error("{\"metricType\":\"proportion\",\"control\":{\"n\":-1,\"sum\":0},"
                 "\"variant\":{\"n\":3,\"sum\":1}}",
                 "out_of_range", "control.n:");
    expect_error("{\"metricType\":\"proportion\",\"extra\":true,\"control\":{\"n\":1,\"sum\":0},"
                 "\"variant\":{\"n\":3,\"sum\":1}}",
                 "unknown_field", "extra:");
}

static void test_analyze_degenerate(void **state)
{
    (void)state;
    static const char *const args[] = {"analyze", NULL};
    pe_test_cli_t r;
    run(&r, args,
        "{\"metricType\":\"proportion\",\"method\":\"sequential\",\"cuped\":false,"
        "\"control\":{\"n\":0,\"sum\":0},\"variant\":{\"n\":0,\"sum\":0}}");
    assert_int_equal(r.status, 0);
    cJSON *j = one_object(&r);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "effect"), "estimate")));
    cJSON_Delete(j);
    pe_test_cli_free(&r);
}

static void test_sample_size(void **state)
{
    (void)state;
    static const char *const args[] = {"sample-size", "--baseline", "0.1",   "--mde",
                                       "0.05",        "--units",    "10000", NULL};
    pe_test_cli_t r;
    run(&r, args, NULL);
    assert_int_equal(r.status, 0);
    cJSON *j = one_object(&r);
    static const char *const keys[] = {"unitsPerArm", "totalUnits",  "unitsPerArmExact",
                                       "effect",      "mdeRelative", "achievedPower",
                                       NULL};
    expect_keys(j, keys);
    double n = cJSON_GetObjectItem(j, "unitsPerArm")->valuedouble;
    double exact = cJSON_GetObjectItem(j, "unitsPerArmExact")->valuedouble;
    /* Two-sided z-test, p 0.10 → 0.105, α 0.05, power 0.8: ≈ 57 760 per arm. */
    assert_true(n == ceil(exact) && n > 57000 && n < 58500);
    assert_true(cJSON_GetObjectItem(j, "totalUnits")->valuedouble == 2 * n);
    cJSON_Delete(j);
    pe_test_cli_free(&r);

    static const char *const bad[] = {"sample-size", "--baseline", "1.5", "--mde", "0.05", NULL};
    run(&r, bad, NULL);
    assert_int_equal(r.status, 2);
    j = one_object(&r);
    assert_non_null(cJSON_GetObjectItem(j, "error"));
    cJSON_Delete(j);
    pe_test_cli_free(&r);

    static const char *const unknown[] = {"sample-size", "--bogus", "1", NULL};
    run(&r, unknown, NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--bogus"));
    pe_test_cli_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analyze_shape),  cmocka_unit_test(test_analyze_decision),
        cmocka_unit_test(test_analyze_errors), cmocka_unit_test(test_analyze_degenerate),
        cmocka_unit_test(test_sample_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
