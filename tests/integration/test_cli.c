/*
 * test_cli.c — the profit-engine command line as a user meets it: the binary (PE_TEST_BINARY)
 * run in a child process with an environment and standard input chosen by each test.
 *
 * Invariants the tests hold the binary to:
 *  1. Exit status: 0 success, 1 the command failed, 2 bad usage or bad configuration; never a
 *     signal (a crash or a sanitizer abort fails the test).
 *  2. A bad PE_* value is reported on exactly one stderr line, "profit-engine: <VARIABLE>…",
 *     before anything is connected to.
 *  3. Commands that succeed print exactly one JSON object on stdout, whose claims are checked
 *     against the database (the store exists with that name, zone and currency; the keys and the
 *     password authenticate).
 *
 * The child's environment is ours minus every PE_* variable, plus what the test sets, so a
 * developer's own PE_LISTEN or PE_LOG_LEVEL cannot change an outcome.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pe/tenancy.h"
#include "pe/version.h"
#include "pe_test.h"

#define RUN_TIMEOUT_MS 20000
/* A database URL that parses but whose server does not exist: a command that got past the
 * configuration checks by mistake fails fast with exit 1 instead of touching a real database. */
#define DEAD_DB "host=/nonexistent-pe-test-cli port=1 connect_timeout=1"

static char *migrated; /* a migrated private database shared by the store/user tests */

static size_t count_lines(const char *s)
{
    size_t n = 0, len = strlen(s);
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    if (len && s[len - 1] != '\n')
        n++;
    return n;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Runs the binary with args (NULL-terminated), environment = ours minus PE_* plus env
 * (NULL-terminated "NAME=value"), and stdin_data on standard input (NULL: empty). */
static void run(pe_test_cli_t *r, const char *const *args, const char *const *env,
                const char *stdin_data)
{
    pe_test_cli_exec(args, env, stdin_data, RUN_TIMEOUT_MS, r);
}

/* Asserts the exit code, printing what the child said when it differs. */
static void expect_exit(const pe_test_cli_t *r, int want)
{
    if (r->timed_out || r->signal || r->status != want) {
        print_error("exit %d signal %d%s (want exit %d)\n--- stdout ---\n%s\n--- stderr ---\n%s\n",
                    r->status, r->signal, r->timed_out ? " timed out" : "", want, r->out, r->err);
        fail();
    }
}

/* Parses stdout as exactly one JSON object on one line. */
static cJSON *stdout_json(const pe_test_cli_t *r)
{
    assert_int_equal(count_lines(r->out), 1);
    cJSON *j = NULL;
    char err[128];
    if (pe_json_parse(r->out, r->out_len, &j, err, sizeof err) != 0)
        fail_msg("stdout is not JSON (%s): %s", err, r->out);
    assert_true(cJSON_IsObject(j));
    return j;
}

static double json_num(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!cJSON_IsNumber(v))
        fail_msg("\"%s\" is not a number", name);
    return v->valuedouble;
}

static char db_env[4200];
static char redis_env[4200];

/* PE_DATABASE_URL=<conninfo> and the test Redis, as a NULL-terminated env list in out. */
static const char *const *env_for(const char *conninfo)
{
    static const char *list[3];
    snprintf(db_env, sizeof db_env, "PE_DATABASE_URL=%s", conninfo);
    snprintf(redis_env, sizeof redis_env, "PE_REDIS_URL=%s", pe_test_redis_url());
    list[0] = db_env;
    list[1] = redis_env;
    list[2] = NULL;
    return list;
}

/* ---- help, version, usage -------------------------------------------------------------------- */

static void test_help_and_version(void **state)
{
    (void)state;
    pe_test_cli_t r;
    static const char *const helps[][2] = {{"--help", NULL}, {"-h", NULL}, {"help", NULL}};
    for (size_t i = 0; i < PE_ARRAY_LEN(helps); i++) {
        run(&r, helps[i], NULL, NULL);
        expect_exit(&r, 0);
        assert_true(starts_with(r.out, "usage: profit-engine"));
        assert_non_null(strstr(r.out, "commands:"));
        assert_non_null(strstr(r.out, "PE_DATABASE_URL"));
        assert_int_equal(r.err_len, 0);
        pe_test_cli_free(&r);
    }

    run(&r, (const char *const[]){"--version", NULL}, NULL, NULL);
    expect_exit(&r, 0);
    char want[128];
    snprintf(want, sizeof want, "profit-engine %s (", PE_VERSION);
    assert_true(starts_with(r.out, want));
    assert_int_equal(count_lines(r.out), 1);
    assert_int_equal(r.err_len, 0);
    pe_test_cli_free(&r);
}

static void test_subcommand_help(void **state)
{
    (void)state;
    static const struct {
        const char *args[4];
        const char *usage;
    } cases[] = {
        {{"serve", "--help", NULL}, "usage: profit-engine serve"},
        {{"migrate", "--help", NULL}, "usage: profit-engine migrate"},
        {{"store", "--help", NULL}, "usage: profit-engine store create"},
        {{"store", "create", "--help", NULL}, "usage: profit-engine store create"},
        {{"user", "--help", NULL}, "usage: profit-engine user create"},
        {{"user", "create", "--help", NULL}, "usage: profit-engine user create"},
        {{"user", "create", "-h", NULL}, "usage: profit-engine user create"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_test_cli_t r;
        /* A dead database: --help must answer without connecting to anything. */
        run(&r, cases[i].args, (const char *const[]){"PE_DATABASE_URL=" DEAD_DB, NULL}, NULL);
        expect_exit(&r, 0);
        if (!starts_with(r.out, cases[i].usage))
            fail_msg("%s %s: stdout does not start with '%s': %s", cases[i].args[0],
                     cases[i].args[1], cases[i].usage, r.out);
        assert_int_equal(r.err_len, 0);
        pe_test_cli_free(&r);
    }
}

static void test_unknown_command(void **state)
{
    (void)state;
    static const char *const cases[][5] = {
        {"frobnicate", NULL},
        {"store", "delete", NULL},
        {"user", "remove", NULL},
        {"migrate", "--force", NULL},
        {"store", "create", "--name", NULL}, /* an option without its value */
        {"store", "create", "--colour", "red"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_test_cli_t r;
        run(&r, cases[i], (const char *const[]){"PE_DATABASE_URL=" DEAD_DB, NULL}, NULL);
        expect_exit(&r, 2);
        assert_true(starts_with(r.err, "profit-engine: "));
        assert_non_null(strstr(r.err, "usage: profit-engine"));
        assert_int_equal(r.out_len, 0);
        pe_test_cli_free(&r);
    }
}

/* ---- configuration --------------------------------------------------------------------------- */
/* PE_JOBS names the background jobs of serve; a name that is no job stops serve before it
 * listens, with exit status 2 and a line naming the variable and the jobs there are. */
static void test_serve_refuses_unknown_job(void **state)
{
    (void)state;
    char redis[4200];
    snprintf(redis, sizeof redis, "PE_REDIS_URL=%s", pe_test_redis_url());
    pe_test_cli_t r;
    run(&r, (const char *const[]){"serve", NULL},
        (const char *const[]){"PE_DATABASE_URL=" DEAD_DB, redis, "PE_LISTEN=127.0.0.1:0",
                              "PE_JOBS=aggregate,partition_maintenanse", NULL},
        NULL);
    const char *want = "profit-engine: PE_JOBS: 'partition_maintenanse' is not a job (all, none, "
                       "or a list of partition_maintenance, aggregate";
    if (r.timed_out || r.signal != 0 || r.status != 2 || !strstr(r.err, want))
        fail_msg("want exit 2 and '%s…'; got exit %d signal %d timed out %d, stderr:\n%s", want,
                 r.status, r.signal, r.timed_out, r.err);
    pe_test_cli_free(&r);
}

static void test_bad_configuration(void **state)
{
    (void)state;
    static const struct {
        const char *var;
        const char *assignment;
    } cases[] = {
        {"PE_LISTEN", "PE_LISTEN=foo"},
        {"PE_LISTEN", "PE_LISTEN=127.0.0.1:99999"},
        {"PE_LOG_LEVEL", "PE_LOG_LEVEL=loud"},
        {"PE_DB_POOL_SIZE", "PE_DB_POOL_SIZE=0"},
        {"PE_HTTP_THREADS", "PE_HTTP_THREADS=abc"},
        {"PE_HTTP_THREADS", "PE_HTTP_THREADS=-1"},
        {"PE_MAX_CONNECTIONS", "PE_MAX_CONNECTIONS=0"},
        {"PE_CONNECTION_TIMEOUT", "PE_CONNECTION_TIMEOUT=0"},
        {"PE_WEB_DIR", "PE_WEB_DIR=/nonexistent"},
        {"PE_REDIS_URL", "PE_REDIS_URL=http://x"},
        {"PE_DATABASE_URL", "PE_DATABASE_URL=postgresql://x:y:z"},
        {"PE_DATABASE_URL", "PE_DATABASE_URL=host=localhost dbname"},
        {"PE_SHUTDOWN_GRACE", "PE_SHUTDOWN_GRACE=60"},
    };
    char redis[4200];
    snprintf(redis, sizeof redis, "PE_REDIS_URL=%s", pe_test_redis_url());
    int failures = 0;
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        /* Harmless values for the other two URLs; the bad value is the only setting of its
         * name. */
        const char *envp[4];
        size_t k = 0;
        if (strcmp(cases[i].var, "PE_DATABASE_URL") != 0)
            envp[k++] = "PE_DATABASE_URL=" DEAD_DB;
        if (strcmp(cases[i].var, "PE_REDIS_URL") != 0)
            envp[k++] = redis;
        envp[k++] = cases[i].assignment;
        envp[k] = NULL;

        pe_test_cli_t r;
        run(&r, (const char *const[]){"migrate", NULL}, envp, NULL);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "profit-engine: %s", cases[i].var);
        bool ok = !r.timed_out && r.signal == 0 && r.status == 2 && count_lines(r.err) == 1 &&
                  starts_with(r.err, prefix) && r.out_len == 0;
        if (!ok) {
            print_error("%s: want exit 2 and one stderr line '%s…'; got exit %d signal %d, "
                        "stderr:\n%s---\n",
                        cases[i].assignment, prefix, r.status, r.signal, r.err);
            failures++;
        }
        pe_test_cli_free(&r);
    }
    assert_int_equal(failures, 0);
}

/* ---- migrate --------------------------------------------------------------------------------- */

static void test_migrate(void **state)
{
    (void)state;
    char *fresh = pe_test_db_create();
    pe_test_cli_t r;

    run(&r, (const char *const[]){"migrate", NULL}, env_for(fresh), NULL);
    expect_exit(&r, 0);
    cJSON *j = stdout_json(&r);
    assert_true(pe_embedded_migrations_count > 0);
    assert_int_equal((size_t)json_num(j, "applied"), pe_embedded_migrations_count);
    assert_int_equal((size_t)json_num(j, "total"), pe_embedded_migrations_count);
    cJSON_Delete(j);
    pe_test_cli_free(&r);

    run(&r, (const char *const[]){"migrate", NULL}, env_for(fresh), NULL);
    expect_exit(&r, 0);
    j = stdout_json(&r);
    assert_int_equal((int)json_num(j, "applied"), 0);
    assert_int_equal((size_t)json_num(j, "total"), pe_embedded_migrations_count);
    cJSON_Delete(j);
    pe_test_cli_free(&r);

    /* An unreachable database: the command fails (1), with a message, not a usage error. */
    run(&r, (const char *const[]){"migrate", NULL},
        (const char *const[]){"PE_DATABASE_URL=" DEAD_DB, NULL}, NULL);
    expect_exit(&r, 1);
    assert_non_null(strstr(r.err, "profit-engine: migrate:"));
    assert_int_equal(r.out_len, 0);
    pe_test_cli_free(&r);

    pe_test_db_drop(fresh);
}

/* ---- store create ---------------------------------------------------------------------------- */

/* Runs store create with the given options on the shared database; returns the parsed output. */
static cJSON *store_create(const char *name, const char *tz, const char *currency)
{
    const char *args[10] = {"store", "create", "--name", name, NULL};
    size_t n = 4;
    if (tz) {
        args[n++] = "--timezone";
        args[n++] = tz;
    }
    if (currency) {
        args[n++] = "--currency";
        args[n++] = currency;
    }
    args[n] = NULL;
    pe_test_cli_t r;
    run(&r, args, env_for(migrated), NULL);
    expect_exit(&r, 0);
    cJSON *j = stdout_json(&r);
    pe_test_cli_free(&r);
    return j;
}

static void test_store_create(void **state)
{
    (void)state;
    cJSON *j = store_create("Berlin Bikes", "Europe/Berlin", "EUR");
    const char *id = pe_test_json_require_str(j, "storeId");
    const char *pk = pe_test_json_require_str(j, "publishableKey");
    const char *sk = pe_test_json_require_str(j, "secretKey");
    assert_true(pe_test_uuid_shaped(id));
    assert_true(starts_with(pk, "pk_") && strlen(pk) > 20);
    assert_true(starts_with(sk, "sk_") && strlen(sk) > 20);
    assert_string_not_equal(pk + 3, sk + 3);
    assert_int_equal(cJSON_GetArraySize(j), 3);

    /* What it printed is true: the store exists as asked and both keys resolve to it. */
    pe_db_pool_t *pool = pe_db_pool_new(migrated, 1);
    assert_non_null(pool);
    pe_store_t store;
    assert_int_equal(pe_tenancy_store_get(pool, id, &store), 0);
    assert_string_equal(store.name, "Berlin Bikes");
    assert_string_equal(store.timezone, "Europe/Berlin");
    assert_string_equal(store.currency, "EUR");
    char got[PE_ID_LEN];
    pe_key_kind_t kind;
    assert_int_equal(pe_tenancy_key_authenticate(pool, sk, got, &kind), 0);
    assert_string_equal(got, id);
    assert_int_equal(kind, PE_KEY_SECRET);
    assert_int_equal(pe_tenancy_key_authenticate(pool, pk, got, &kind), 0);
    assert_string_equal(got, id);
    assert_int_equal(kind, PE_KEY_PUBLISHABLE);
    cJSON_Delete(j);

    /* Defaults: UTC and USD. */
    j = store_create("Plain Shop", NULL, NULL);
    assert_int_equal(pe_tenancy_store_get(pool, pe_test_json_require_str(j, "storeId"), &store), 0);
    assert_string_equal(store.timezone, "UTC");
    assert_string_equal(store.currency, "USD");
    cJSON_Delete(j);
    pe_db_pool_free(pool);
}

static void test_store_create_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *args[8];
        const char *message; /* expected in stderr */
    } cases[] = {
        {{"store", "create", NULL}, "--name is required"},
        {{"store", "create", "--timezone", "UTC", NULL}, "--name is required"},
        {{"store", "create", "--name", "X", "--currency", "euro", NULL}, "currency"},
        {{"store", "create", "--name", "X", "--currency", "eur", NULL}, "currency"},
        {{"store", "create", "--name", "X", "--currency", "", NULL}, "currency"},
        {{"store", "create", "--name", "X", "--timezone", "Mars/Olympus_Mons", NULL}, "timezone"},
        {{"store", "create", "--name", "", NULL}, "name"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_test_cli_t r;
        run(&r, cases[i].args, env_for(migrated), NULL);
        expect_exit(&r, 2);
        assert_int_equal(r.out_len, 0);
        if (!starts_with(r.err, "profit-engine: ") || !strstr(r.err, cases[i].message))
            fail_msg("case %zu: stderr lacks '%s': %s", i, cases[i].message, r.err);
        pe_test_cli_free(&r);
    }
}

/* ---- user create ----------------------------------------------------------------------------- */

static void test_user_create(void **state)
{
    (void)state;
    cJSON *store = store_create("User Shop", "UTC", "GBP");
    const char *store_id = pe_test_json_require_str(store, "storeId");
    pe_test_cli_t r;

    run(&r,
        (const char *const[]){"user", "create", "--email", "Owner@Example.COM", "--store", store_id,
                              NULL},
        env_for(migrated), "correct horse battery\n");
    expect_exit(&r, 0);
    cJSON *j = stdout_json(&r);
    const char *user_id = pe_test_json_require_str(j, "userId");
    assert_true(pe_test_uuid_shaped(user_id));
    assert_string_equal(pe_test_json_require_str(j, "storeId"), store_id);
    /* The password is never echoed back. */
    assert_null(strstr(r.out, "horse"));
    assert_null(strstr(r.err, "horse"));
    pe_test_cli_free(&r);

    pe_db_pool_t *pool = pe_db_pool_new(migrated, 1);
    assert_non_null(pool);
    char verified[PE_ID_LEN];
    assert_int_equal(
        pe_tenancy_user_verify(pool, "owner@example.com", "correct horse battery", verified), 0);
    assert_string_equal(verified, user_id);
    assert_int_equal(pe_tenancy_member_check(pool, user_id, store_id), 0);
    pe_db_pool_free(pool);
    cJSON_Delete(j);

    /* No password on stdin. */
    run(&r,
        (const char *const[]){"user", "create", "--email", "a@example.com", "--store", store_id,
                              NULL},
        env_for(migrated), NULL);
    expect_exit(&r, 2);
    assert_non_null(strstr(r.err, "password"));
    assert_int_equal(r.out_len, 0);
    pe_test_cli_free(&r);
    run(&r,
        (const char *const[]){"user", "create", "--email", "a@example.com", "--store", store_id,
                              NULL},
        env_for(migrated), "");
    expect_exit(&r, 2);
    assert_int_equal(r.out_len, 0);
    pe_test_cli_free(&r);

    /* A password too short for the policy. */
    run(&r,
        (const char *const[]){"user", "create", "--email", "b@example.com", "--store", store_id,
                              NULL},
        env_for(migrated), "short\n");
    expect_exit(&r, 2);
    assert_non_null(strstr(r.err, "password"));
    assert_int_equal(r.out_len, 0);
    pe_test_cli_free(&r);

    /* A store that does not exist (well-formed and malformed ids). */
    static const char *const missing[] = {"00000000-0000-4000-8000-000000000000", "not-a-uuid"};
    for (size_t i = 0; i < PE_ARRAY_LEN(missing); i++) {
        run(&r,
            (const char *const[]){"user", "create", "--email", "c@example.com", "--store",
                                  missing[i], NULL},
            env_for(migrated), "correct horse battery\n");
        assert_false(r.timed_out);
        assert_int_equal(r.signal, 0);
        assert_int_not_equal(r.status, 0);
        assert_non_null(strstr(r.err, "profit-engine: user create:"));
        assert_int_equal(r.out_len, 0);
        pe_test_cli_free(&r);
    }

    /* Missing --store. */
    run(&r, (const char *const[]){"user", "create", "--email", "d@example.com", NULL},
        env_for(migrated), "correct horse battery\n");
    expect_exit(&r, 2);
    assert_int_equal(r.out_len, 0);
    pe_test_cli_free(&r);
    cJSON_Delete(store);
}

/* ---- serve ----------------------------------------------------------------------------------- */

static void test_serve_cannot_listen(void **state)
{
    (void)state;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t sl = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);

    char listen_env[64], db[4200], redis[4200];
    snprintf(listen_env, sizeof listen_env, "PE_LISTEN=127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    snprintf(db, sizeof db, "PE_DATABASE_URL=%s", migrated);
    snprintf(redis, sizeof redis, "PE_REDIS_URL=%s", pe_test_redis_url());
    pe_test_cli_t r;
    run(&r, (const char *const[]){"serve", NULL},
        (const char *const[]){db, redis, listen_env, "PE_SHUTDOWN_GRACE=1", NULL}, NULL);
    close(fd);
    assert_false(r.timed_out);
    assert_int_equal(r.signal, 0);
    assert_int_not_equal(r.status, 0);
    assert_non_null(strstr(r.err, "profit-engine: cannot listen on 127.0.0.1:"));
    assert_int_equal(r.out_len, 0);
    pe_test_cli_free(&r);

    /* A host name where an address is needed: refused at start, as a configuration error. */
    run(&r, (const char *const[]){"serve", NULL},
        (const char *const[]){db, redis, "PE_LISTEN=example.com:80", NULL}, NULL);
    expect_exit(&r, 2);
    assert_int_equal(count_lines(r.err), 1);
    assert_true(starts_with(r.err, "profit-engine: PE_LISTEN: 'example.com'"));
    assert_int_equal(r.out_len, 0);
    pe_test_cli_free(&r);
}

static int group_setup(void **state)
{
    (void)state;
    assert_int_equal(pe_crypto_init(), 0);
    migrated = pe_test_db_create_migrated();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pe_test_db_drop(migrated);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_subcommand_help),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_bad_configuration),
        cmocka_unit_test(test_serve_refuses_unknown_job),
        cmocka_unit_test(test_migrate),
        cmocka_unit_test(test_store_create),
        cmocka_unit_test(test_store_create_refusals),
        cmocka_unit_test(test_user_create),
        cmocka_unit_test(test_serve_cannot_listen),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
