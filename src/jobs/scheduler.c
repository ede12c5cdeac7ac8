/*
 * scheduler.c — one thread that runs each registered job at its interval.
 *
 * Invariants:
 *  1. Jobs run one at a time, never concurrently with themselves.
 *  2. Times are on the monotonic clock: a wall-clock jump neither skips nor repeats a run.
 *  3. Once stopping, no job starts: a stop waits for the job running then, never for the
 *     others due in the same pass (at start every job is due within seconds of the others).
 *  4. `running` names the job in progress and `ended` is set when the thread returns, both
 *     under the lock, with `wake` signalled: a bounded stop waits on them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pe/jobs.h"

typedef struct {
    pe_job_t job;
    int64_t next_us;
} slot_t;

struct pe_jobs_scheduler {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping, ended;
    const char *running; /* the job in progress, or NULL */
    size_t njobs;
    slot_t *slots;
};

static void *scheduler_main(void *arg)
{
    pe_jobs_scheduler_t *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t now = pe_now_mono_us(), next = INT64_MAX;
        for (size_t i = 0; i < s->njobs && !s->stopping; i++) {
            slot_t *slot = &s->slots[i];
            if (slot->next_us <= now) {
                s->running = slot->job.name;
                pthread_mutex_unlock(&s->lock);
                char err[256] = "";
                int64_t start = pe_now_mono_us();
                int rc = slot->job.run(slot->job.arg, err, sizeof err);
                if (rc != 0)
                    pe_log(PE_LOG_WARN, "job_failed", "%s: %s%s%s", slot->job.name, pe_strerror(rc),
                           err[0] ? ": " : "", err);
                else
                    pe_log(PE_LOG_DEBUG, "job_done", "%s in %.1f ms", slot->job.name,
                           (double)(pe_now_mono_us() - start) / 1000.0);
                pthread_mutex_lock(&s->lock);
                s->running = NULL;
                now = pe_now_mono_us();
                slot->next_us = now + (int64_t)slot->job.interval_s * 1000000;
            }
            if (slot->next_us < next)
                next = slot->next_us;
        }
        if (s->stopping)
            break;
        /* condition variables wait on CLOCK_REALTIME; convert the monotonic gap */
        int64_t wait_us = next - pe_now_mono_us();
        if (wait_us <= 0)
            continue;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        int64_t ns = deadline.tv_nsec + (wait_us % 1000000) * 1000;
        deadline.tv_sec += (time_t)(wait_us / 1000000 + ns / 1000000000);
        deadline.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&s->wake, &s->lock, &deadline);
    }
    s->ended = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

pe_jobs_scheduler_t *pe_jobs_scheduler_start(const pe_job_t *jobs, size_t njobs)
{
    pe_jobs_scheduler_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->slots = calloc(njobs ? njobs : 1, sizeof *s->slots);
    if (!s->slots) {
        free(s);
        return NULL;
    }
    int64_t now = pe_now_mono_us();
    for (size_t i = 0; i < njobs; i++) {
        s->slots[i].job = jobs[i];
        s->slots[i].next_us = now + (int64_t)jobs[i].first_delay_s * 1000000;
    }
    s->njobs = njobs;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s->slots);
        free(s);
        return NULL;
    }
    return s;
}

void pe_jobs_scheduler_request_stop(pe_jobs_scheduler_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

static void scheduler_free(pe_jobs_scheduler_t *s)
{
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s->slots);
    free(s);
}

void pe_jobs_scheduler_stop(pe_jobs_scheduler_t *s)
{
    if (!s)
        return;
    pe_jobs_scheduler_request_stop(s);
    scheduler_free(s);
}

int pe_jobs_scheduler_stop_within(pe_jobs_scheduler_t *s, int timeout_ms, char *running,
                                  size_t running_len)
{
    if (!s)
        return 0;
    pe_jobs_scheduler_request_stop(s);
    /* condition variables wait on CLOCK_REALTIME */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int64_t ns = deadline.tv_nsec + (int64_t)(timeout_ms % 1000) * 1000000;
    deadline.tv_sec += (time_t)(timeout_ms / 1000 + ns / 1000000000);
    deadline.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&s->lock);
    while (!s->ended && pthread_cond_timedwait(&s->wake, &s->lock, &deadline) == 0) {
    }
    bool ended = s->ended;
    if (!ended)
        snprintf(running, running_len, "%s", s->running ? s->running : "a job");
    pthread_mutex_unlock(&s->lock);
    if (!ended)
        return PE_ETIMEOUT;
    scheduler_free(s);
    return 0;
}
