/*
 * test_scheduler.c — the job scheduler (src/jobs/scheduler.c): every job runs at its interval,
 * one at a time, and a stop waits for the job running then but starts no other.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "pe/jobs.h"
#include "pe_test.h"

typedef struct {
    atomic_int runs;
    atomic_bool running;
    long sleep_ms;
} counter_t;

static int count(void *arg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    counter_t *c = arg;
    atomic_store(&c->running, true);
    atomic_fetch_add(&c->runs, 1);
    pe_test_sleep_ms(c->sleep_ms);
    atomic_store(&c->running, false);
    return 0;
}

static void test_jobs_run_at_their_interval(void **state)
{
    (void)state;
    counter_t a = {.sleep_ms = 0}, b = {.sleep_ms = 0};
    const pe_job_t jobs[] = {{"a", 1, 0, count, &a}, {"b", 3600, 0, count, &b}};
    pe_jobs_scheduler_t *s = pe_jobs_scheduler_start(jobs, PE_ARRAY_LEN(jobs));
    assert_non_null(s);
    pe_test_sleep_ms(2500);
    pe_jobs_scheduler_stop(s);
    assert_true(atomic_load(&a.runs) >= 2 && atomic_load(&a.runs) <= 4);
    assert_int_equal(atomic_load(&b.runs), 1);
}

/* Three jobs due at once; the stop comes while the first runs: it finishes, no other starts. */
static void test_stop_starts_no_other_job(void **state)
{
    (void)state;
    counter_t first = {.sleep_ms = 500}, second = {.sleep_ms = 0}, third = {.sleep_ms = 0};
    const pe_job_t jobs[] = {
        {"first", 60, 0, count, &first},
        {"second", 60, 0, count, &second},
        {"third", 60, 0, count, &third},
    };
    pe_jobs_scheduler_t *s = pe_jobs_scheduler_start(jobs, PE_ARRAY_LEN(jobs));
    assert_non_null(s);
    int64_t deadline = pe_now_mono_us() + 5000000;
    while (!atomic_load(&first.running) && pe_now_mono_us() < deadline)
        pe_test_sleep_ms(5);
    assert_true(atomic_load(&first.running));
    pe_jobs_scheduler_stop(s);
    assert_false(atomic_load(&first.running)); /* waited for it */
    assert_int_equal(atomic_load(&first.runs), 1);
    assert_int_equal(atomic_load(&second.runs), 0);
    assert_int_equal(atomic_load(&third.runs), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_run_at_their_interval),
        cmocka_unit_test(test_stop_starts_no_other_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
